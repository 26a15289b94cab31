mod instance;
mod packet;
mod sim;
